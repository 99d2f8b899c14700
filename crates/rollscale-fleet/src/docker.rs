//! The container fleet: instances are Docker/Podman containers (in progress).
