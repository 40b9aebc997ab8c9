"""Built-in transport plugins of sim7020 (native, cip, transparent, udp_extended)."""
