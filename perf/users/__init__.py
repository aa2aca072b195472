"""The simulated users: BatchUser, SocketUser, MixedUser."""
