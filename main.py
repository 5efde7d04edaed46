"""Start the desktop app: ``python main.py [FOLDER]``."""
from app.ui.launch import main

if __name__ == "__main__":
    raise SystemExit(main())
