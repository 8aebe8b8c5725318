from scte.services.commerce.service import main

main()
