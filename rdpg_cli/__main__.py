from rdpg_cli.cli import main

main()
