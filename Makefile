# Shortcuts; ./dev.sh works without make.
.PHONY: demo test bench stop lint
demo:
	./dev.sh demo
test:
	./dev.sh test
bench:
	./dev.sh bench
stop:
	./dev.sh stop
lint:
	.venv/bin/ruff check .
