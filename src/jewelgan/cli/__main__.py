from jewelgan.cli import main

main()
