"""Real-time recognition runtime: streaming recogniser, layout adapters, model bundles, export.

Used by the ROS nodes and by bag replay alike; never imports rclpy. Import the submodules directly
(`masksem_core.runtime.recognizer`, `.adapters`, `.bundle`, `.export`) so that using the adapters does
not pull in torch.
"""
