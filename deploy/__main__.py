"""`python -m deploy` is the same as the `rpdeploy` console script."""

from deploy.cli.main import main

if __name__ == "__main__":
    main()
