from crsml.cli import main

main()
