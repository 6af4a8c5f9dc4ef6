"""The Gradio web UI of DGM Playground: layout, per-session state and figures. No model math lives here."""
