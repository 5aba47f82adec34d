"""MaskSem core library: layouts, data, model, training, runtime. Never imports rclpy."""

__version__ = "0.1.0"
