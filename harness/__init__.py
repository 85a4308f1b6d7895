"""ccharness: a distributed load-plus-fault harness for contact-centre trunk failover."""

__version__ = "0.1.0"
