print("fieldcli")
