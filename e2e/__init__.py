"""Tools that drive the running app from outside: the Streamlit server, Chromium, the load test."""
