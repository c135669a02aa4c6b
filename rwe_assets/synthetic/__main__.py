"""python -m rwe_assets.synthetic --persons N --seed S --out DIR"""

from rwe_assets.synthetic.cli import main

if __name__ == "__main__":  # spawned worker processes import this module too
    raise SystemExit(main())
