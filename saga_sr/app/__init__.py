"""`saga-sr app`: a local web page for upsampling. `runner` does the work (no Gradio), `page` lays it out."""
