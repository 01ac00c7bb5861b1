from rdpg_cli.launch import main

main()
