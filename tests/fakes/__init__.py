"""Fakes of the services driftmon talks to, served on loopback for tests."""
