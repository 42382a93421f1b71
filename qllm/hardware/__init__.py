"""Hardware: IBM fake devices (one cache for every backend and cost target) and credentials."""
