"""MaskSem ROS 2 package: messages, bag I/O and node logic (no imports here: under colcon this file is
replaced by the one rosidl generates for masksem_ros.msg)."""
