from .cli import main

if __name__ == "__main__":  # not when a farm's local worker process, started by spawning, imports this module again
    raise SystemExit(main())
