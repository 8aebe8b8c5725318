from scte.services.notifications.service import main

main()
