"""What humans read on the forge: PR bodies, reports, plots, the dashboard, requests, Actions I/O."""
