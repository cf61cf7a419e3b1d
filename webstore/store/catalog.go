package store

import (
	"context"
	"database/sql"
	"fmt"
)

// catalogItem is one seeded product.
type catalogItem struct {
	name, category, description string
	priceCents                  int64
}

// catalog is the realistic catalog seeded on first start. Prices are in US cents.
var catalog = []catalogItem{
	{"Aurora Wireless Headphones", "electronics", "Over-ear Bluetooth headphones with active noise cancelling and 30 h battery.", 19999},
	{"Pixel-Perfect 27\" 4K Monitor", "electronics", "27-inch IPS 4K UHD monitor, 60 Hz, USB-C with 65 W power delivery.", 32999},
	{"Nimbus Mechanical Keyboard", "electronics", "Tenkeyless mechanical keyboard, hot-swappable brown switches.", 8999},
	{"Glide Ergonomic Mouse", "electronics", "Vertical wireless mouse with adjustable DPI.", 3999},
	{"VoltPack 20,000 mAh Power Bank", "electronics", "USB-C PD power bank, charges a laptop to 50% in 40 minutes.", 4999},
	{"Lumen Smart Bulb (4-pack)", "electronics", "Colour Wi-Fi bulbs, E26, works with voice assistants.", 3499},
	{"Orbit 13\" Ultrabook", "electronics", "13-inch laptop, 16 GB RAM, 512 GB SSD, 1.2 kg.", 124900},
	{"Pulse Fitness Tracker", "electronics", "Heart-rate and sleep tracking band, 10-day battery.", 7999},
	{"EchoDot Mini Speaker", "electronics", "Compact smart speaker with room-filling sound.", 4999},
	{"SnapShot Mirrorless Camera", "electronics", "24 MP mirrorless camera body with 4K video.", 89900},
	{"The Pragmatic Gardener", "books", "Hardcover guide to growing vegetables in small spaces.", 2899},
	{"Distributed Systems, Gently", "books", "An approachable introduction to consensus, replication and failure.", 4599},
	{"The Night Train to Lisbon", "books", "Paperback novel; a bestselling literary mystery.", 1699},
	{"Cooking with Cast Iron", "books", "150 recipes for the skillet, Dutch oven and griddle.", 3299},
	{"Atlas of Remote Islands", "books", "Illustrated atlas of fifty islands you will never visit.", 2499},
	{"Children's Encyclopedia of Space", "books", "Ages 7-12, 200 pages of planets, rockets and astronauts.", 1999},
	{"Barista Pro Espresso Machine", "home", "15-bar pump espresso machine with steam wand.", 27999},
	{"Copper-Core Saucepan Set", "home", "Three stainless steel saucepans with lids, induction ready.", 15999},
	{"Hearth 5.5 qt Dutch Oven", "home", "Enamelled cast-iron Dutch oven, oven safe to 260 °C.", 8999},
	{"CloudRest Memory Foam Pillow", "home", "Cooling gel memory foam pillow, queen size.", 4999},
	{"Linen Duvet Cover", "home", "Stone-washed French linen duvet cover, queen.", 12900},
	{"AquaPure Water Filter Pitcher", "home", "10-cup pitcher with two replacement filters.", 3499},
	{"Chef's Knife 8\"", "home", "German stainless steel chef's knife, full tang.", 6999},
	{"Robo-Sweep Robot Vacuum", "home", "Self-charging robot vacuum with app scheduling.", 29999},
	{"TrailBlazer Running Shoes", "sports", "Lightweight trail running shoes with rock plate.", 12999},
	{"Summit 45 L Backpack", "sports", "Hiking backpack with rain cover and hydration sleeve.", 14999},
	{"FlexGrip Yoga Mat", "sports", "6 mm non-slip yoga mat with carrying strap.", 3999},
	{"Adjustable Dumbbells (pair)", "sports", "Quick-change dumbbells, 2.5 to 24 kg each.", 34999},
	{"Carbon Road Bike Helmet", "sports", "Ventilated road helmet with MIPS protection.", 11999},
	{"Insulated Steel Bottle 1 L", "sports", "Keeps drinks cold for 24 h, hot for 12 h.", 2999},
	{"Merino Wool Crew Sweater", "clothing", "Fine-gauge merino sweater, machine washable.", 8900},
	{"Everyday Denim Jacket", "clothing", "Classic trucker jacket in rigid indigo denim.", 7900},
	{"StormShell Rain Jacket", "clothing", "Waterproof, breathable 3-layer shell with hood.", 18900},
	{"Organic Cotton T-Shirt (3-pack)", "clothing", "Heavyweight organic cotton tees.", 3900},
	{"Leather Chelsea Boots", "clothing", "Full-grain leather boots with elastic side panels.", 17900},
	{"Cashmere Beanie", "clothing", "100% cashmere ribbed beanie.", 5900},
	{"Build-It Robotics Kit", "toys", "Programmable robot kit, 400 pieces, ages 10+.", 11999},
	{"Wooden Train Set", "toys", "52-piece wooden railway with bridge and tunnel.", 5999},
	{"Strategy Board Game: Harbours", "toys", "Trading and building game for 2-5 players.", 4499},
	{"1000-Piece Jigsaw: Alpine Lake", "toys", "Premium 1000-piece jigsaw puzzle.", 1899},
}

// seed inserts the catalog and its stock when the products table is empty.
func (s *DB) seed(ctx context.Context) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM products`).Scan(&n); err != nil {
			return fmt.Errorf("count products: %w", err)
		}
		if n > 0 {
			return nil
		}
		for i, c := range catalog {
			id := int64(i + 1)
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO products (id, name, category, description, price_cents) VALUES (?, ?, ?, ?, ?)`,
				id, c.name, c.category, c.description, c.priceCents); err != nil {
				return fmt.Errorf("seed product %q: %w", c.name, err)
			}
			// Cheaper goods are stocked deeper, as in a real warehouse.
			target := int64(20000)
			switch {
			case c.priceCents >= 50000:
				target = 5000
			case c.priceCents >= 10000:
				target = 10000
			}
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO stock (product_id, quantity, target) VALUES (?, ?, ?)`, id, target, target); err != nil {
				return fmt.Errorf("seed stock for %q: %w", c.name, err)
			}
		}
		return nil
	})
}
