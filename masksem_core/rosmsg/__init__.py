"""The package's ROS messages without ROS: `.msg` definitions in a rosbags type store, message <-> numpy
conversion (the same code runs on rclpy message objects in the nodes), PointCloud2 skeletons and rosbag2
reading/writing. Pure Python over `rosbags`, so training, replay and tests need no ROS installation;
`masksem_ros` builds on it, never the other way round.
"""
