"""The shim family: the launcher, the container start shim, the native monitor (C) and the exec shim."""
