"""Recognition: loading runs for inference, the live recognizer, drawing, WebRTC glue, video."""
