"""What several test folders share: tiny configs, layer checks, crash callbacks, worker scripts."""
