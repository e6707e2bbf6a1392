"""The words, names, places and shapes the demo data is made of (apps.provisioning.seeding)."""

# Leaf categories by top-level category: (name, SKU code, product nouns, price range, option kind).
TAXONOMY: dict[str, tuple[tuple[str, str, tuple[str, ...], tuple[int, int], str], ...]] = {
    "Apparel": (
        ("T-Shirts", "TSH", ("Tee", "Crew Tee", "V-Neck Tee", "Pocket Tee"), (15, 45), "size"),
        ("Hoodies", "HOD", ("Hoodie", "Zip Hoodie", "Pullover"), (40, 95), "size"),
        ("Jackets", "JKT", ("Jacket", "Parka", "Windbreaker", "Bomber"), (80, 320), "size"),
        ("Trousers", "TRS", ("Chinos", "Joggers", "Jeans", "Cargo Pants"), (35, 120), "size"),
    ),
    "Footwear": (
        ("Sneakers", "SNK", ("Runner", "Court Sneaker", "Trainer"), (55, 180), "shoe"),
        ("Boots", "BOT", ("Chelsea Boot", "Hiking Boot", "Work Boot"), (90, 260), "shoe"),
        ("Sandals", "SND", ("Slide", "Sandal", "Espadrille"), (15, 70), "shoe"),
    ),
    "Home": (
        ("Kitchen", "KIT", ("Chef Knife", "Skillet", "Cutting Board", "French Press"), (15, 160), "color"),
        ("Bedding", "BED", ("Duvet Cover", "Pillowcase Set", "Throw Blanket"), (25, 190), "bed"),
        ("Lighting", "LGT", ("Desk Lamp", "Floor Lamp", "Pendant Light"), (30, 250), "color"),
        ("Decor", "DEC", ("Vase", "Candle", "Wall Print", "Planter"), (10, 90), "color"),
    ),
    "Electronics": (
        ("Audio", "AUD", ("Headphones", "Earbuds", "Speaker"), (30, 350), "color"),
        ("Accessories", "ACC", ("Phone Case", "Laptop Sleeve", "Charging Cable"), (8, 60), "color"),
        ("Storage", "STO", ("Portable SSD", "Memory Card", "USB Drive"), (12, 220), "capacity"),
    ),
    "Outdoor": (
        ("Camping", "CMP", ("Tent", "Sleeping Bag", "Camp Stove", "Lantern"), (25, 400), "none"),
        ("Cycling", "CYC", ("Bike Light", "Helmet", "Saddle Bag"), (10, 150), "color"),
    ),
    "Beauty": (
        ("Skincare", "SKN", ("Face Cream", "Serum", "Cleanser", "Sunscreen"), (9, 75), "volume"),
        ("Fragrance", "FRG", ("Eau de Parfum", "Eau de Toilette", "Body Mist"), (25, 140), "volume"),
    ),
}
# Option kind → (option name, values, whether later values cost more).
OPTIONS: dict[str, tuple[str, tuple[str, ...], bool]] = {
    "size": ("size", ("XS", "S", "M", "L", "XL", "XXL"), False),
    "shoe": ("size", ("38", "39", "40", "41", "42", "43", "44", "45"), False),
    "color": ("color", ("Black", "White", "Grey", "Navy", "Olive", "Sand", "Red"), False),
    "bed": ("size", ("Single", "Double", "Queen", "King"), True),
    "capacity": ("capacity", ("64 GB", "128 GB", "256 GB", "512 GB", "1 TB"), True),
    "volume": ("volume", ("30 ml", "50 ml", "100 ml"), True),
}
ADJECTIVES = (
    "Classic", "Essential", "Everyday", "Premium", "Urban", "Coastal", "Alpine", "Heritage", "Nordic",
    "Studio", "Trail", "Summit", "Harbor", "Meadow", "Canyon", "Aurora", "Vintage", "Modern", "Lite",
)
BRANDS = ("Northwind", "Contoso", "Fabrikam", "Tailspin", "Wingtip", "Litware", "Proseware", "Adatum")
MATERIALS = ("cotton", "recycled polyester", "wool", "leather", "steel", "ceramic", "bamboo", "aluminium")
FIRST_NAMES = (
    "Olivia", "Liam", "Emma", "Noah", "Ava", "Oliver", "Sophia", "Elijah", "Isabella", "James", "Mia",
    "Lucas", "Amelia", "Mateo", "Harper", "Ethan", "Evelyn", "Leo", "Chloe", "Jack", "Nora", "Levi",
    "Hannah", "Finn", "Lena", "Jonas", "Clara", "Felix", "Marie", "Paul", "Yuki", "Ravi", "Aisha",
    "Omar", "Sofia", "Mateus", "Ingrid", "Tomasz", "Zoe", "Samuel",
)
LAST_NAMES = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Wilson", "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Lee", "Walker", "Hall",
    "Young", "Muller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker",
    "Nguyen", "Kim", "Patel", "Khan", "Silva", "Rossi", "Dubois", "Novak", "Larsen", "Costa",
)
STREETS = ("Oak Street", "Maple Avenue", "Cedar Lane", "Park Road", "Hill Street", "Lake Drive", "Mill Lane")
# Customers' country, phone prefix and cities by tenant currency (anything else: the US).
REGIONS = {
    "USD": ("US", "+1555", ("Springfield", "Portland", "Austin", "Denver", "Madison", "Raleigh")),
    "EUR": ("DE", "+4930", ("Berlin", "Hamburg", "Munich", "Cologne", "Leipzig", "Dresden")),
    "GBP": ("GB", "+4420", ("London", "Leeds", "Bristol", "Manchester", "Glasgow", "York")),
}
TAX_PERCENT = {"USD": 8, "EUR": 19, "GBP": 20}  # added on top of the discounted goods
DEFAULT_TAX_PERCENT = 10
FREE_SHIPPING_CENTS = 7_500
SHIPPING_CENTS = (499, 1_299)  # standard, express
DISCOUNT_PERCENTS = (5, 10, 15, 20)
ORDER_NOTES = ("Please leave at the door.", "Gift wrap, please.", "Ring twice.", "Deliver after 5pm.")
REFUND_REASONS = ("Damaged in transit", "Wrong size", "Changed mind", "Not as described", "Late delivery")
# Local hour-of-day weights: quiet nights, a lunch bump, evening peak.
HOUR_WEIGHTS = (
    3, 2, 1.5, 1, 1, 1.5, 3, 6, 9, 11, 12, 13, 14, 13, 12, 12, 13, 15, 18, 20, 20, 17, 12, 7,
)
MONTH_FACTORS = (0.85, 0.85, 0.95, 0.95, 1.0, 0.95, 0.9, 0.95, 1.0, 1.05, 1.3, 1.6)
LINE_COUNT_WEIGHTS = (46, 27, 15, 8, 4)  # 1 to 5 lines
QUANTITY_WEIGHTS = (78, 15, 5, 2)  # 1 to 4 units
