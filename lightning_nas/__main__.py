from lightning_nas.cli import main

main()
