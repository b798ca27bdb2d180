print("fieldbench")
