"""Contract-level utilities of the kit: clients, generators, validators, recorders, process control."""
