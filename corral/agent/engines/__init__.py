"""Engine drivers behind one small interface (base.Engine): docker (real) and, later, hollow."""
