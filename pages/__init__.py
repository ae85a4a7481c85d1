"""Streamlit pages (registered in app.py with st.navigation) and their shared helpers."""
