/* A shared library that happens to be named like a plugin. */
int some_function(int x);
int some_function(int x) { return x + 1; }
