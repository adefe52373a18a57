print("rc-migrate")
