from scte.services.activity.service import main

main()
