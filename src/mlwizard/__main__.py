from mlwizard.cli import main

main()
