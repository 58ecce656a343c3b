"""SwinIR image restoration (Liang et al., ICCV Workshops 2021)."""
