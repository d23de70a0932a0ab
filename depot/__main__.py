from depot.cli.main import main

main()
