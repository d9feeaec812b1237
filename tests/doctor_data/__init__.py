"""Doctor test datasets: clean ones (no probe may fail) and one planted defect per probe."""
