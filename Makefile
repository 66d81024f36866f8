# Shortcuts for the commands in the README. `run` and `test` set up .venv themselves;
# `lint` and `bench` use the .venv that `make test` leaves behind.
.PHONY: run test lint bench clean

run:
	python3 -m app up

test:
	python3 -m app test

lint:
	.venv/bin/ruff check app tests bench

# Measures snapshot fan-out to many WebSocket clients (bench/fanout.py); figures go in docs/.
bench:
	.venv/bin/python -m bench.fanout

clean:
	rm -rf .venv var
