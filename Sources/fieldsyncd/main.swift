print("fieldsyncd")
