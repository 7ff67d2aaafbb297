"""Early-boot orchestration: command line and iBFT into a BootPlan, network, login, handover, freeze."""
