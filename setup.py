"""pip install of masksem_core + masksem_ros for machines without ROS (training, replay, tests).

On a ROS 2 workspace the root package is built by colcon through CMakeLists.txt instead.
torch is deliberately unpinned here: install the build you want first (README: CPU pin or CUDA).
"""

import re
import shutil
from pathlib import Path

from setuptools import find_namespace_packages, setup
from setuptools.command.build_py import build_py


class BuildPyWithMessages(build_py):
    """Ship the root msg/*.msg (which ROS needs at the package root) inside masksem_core/rosmsg/msg_defs/."""

    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "masksem_core" / "rosmsg" / "msg_defs"
        target.mkdir(parents=True, exist_ok=True)
        for msg in sorted(Path(__file__).parent.joinpath("msg").glob("*.msg")):
            shutil.copy2(msg, target / msg.name)


# One version: package.xml's (what ROS tools read); `masksem --version` prints the installed one.
VERSION = re.search(r"<version>([^<]+)</version>", Path(__file__).with_name("package.xml").read_text())[1]

setup(
    name="masksem",
    version=VERSION,
    description="MaskSem: self-supervised skeleton action recognition for collaborative robots",
    python_requires=">=3.10",
    packages=find_namespace_packages(
        include=["masksem_core", "masksem_core.*", "masksem_ros", "masksem_ros.*"]
    ),
    package_data={
        "masksem_core": ["configs/*.yaml", "resources/*", "resources/**/*"],
    },
    include_package_data=True,
    install_requires=[
        "torch>=2.1",
        "numpy>=1.24",
        "pyyaml>=6",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        "rosbags>=0.10",
        "safetensors>=0.4",
        "tensorboard>=2.14",
    ],
    extras_require={
        "export": ["onnx>=1.15", "onnxruntime>=1.17", "onnxscript"],
        "fast": ["numba>=0.59"],  # compiled NTU .skeleton scanner (3-4x faster preparation)
        "pose": ["mediapipe==0.10.21", "numpy<2"],
        "test": ["pytest>=8", "hypothesis>=6.100", "catkin_pkg>=1.0", "scikit-image>=0.22", "ruff>=0.6"],
    },
    cmdclass={"build_py": BuildPyWithMessages},
    entry_points={"console_scripts": ["masksem = masksem_core.cli:main"]},
)
