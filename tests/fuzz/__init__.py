"""Property-based fuzzing of what voxbench reads (a package, so its conftest is not the suite's)."""
