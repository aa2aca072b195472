"""Notifications: events to in-app, email, push and webhook channels, per user preferences."""
