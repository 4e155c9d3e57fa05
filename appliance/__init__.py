"""The appliance: supervisor, compactor, configuration and health."""
