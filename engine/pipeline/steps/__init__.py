"""The build steps, one module each; every module registers its ``Step``."""
