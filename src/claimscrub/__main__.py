from claimscrub.cli import main

main()
