"""A reproducible comparison of autoregressive, masked-diffusion and sparse-distribution-diffusion text generators."""
