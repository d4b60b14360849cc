"""dutycall: WebRTC duty-room video for a city's duty system."""

__version__ = "0.1.0"
