"""Local fakes of external services (Saleor style: tests never reach the network)."""
