"""Speech-emotion tools: evaluation report, file/stream inference, ONNX export."""
